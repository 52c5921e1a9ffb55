"""creditgate: order-time credit checks."""
