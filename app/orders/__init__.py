"""Order lifecycle after the credit check: amend, dispatch, cancel, release, reject, expire."""
