"""Pod scaling: KEDA-compatible models and the pure scaling decision engine."""
