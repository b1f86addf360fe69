"""Fleet layer."""
