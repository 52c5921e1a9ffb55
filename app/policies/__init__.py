"""Decision parameters per risk class: read, replace, audit, simulate."""
