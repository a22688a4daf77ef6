"""The CloudProvider port and its adapters (the simulated cloud)."""
