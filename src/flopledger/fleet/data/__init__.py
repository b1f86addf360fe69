"""Package data of the fleet layer (assumption tables)."""
