"""factory_boy factories for Analytics."""
