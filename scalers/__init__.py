"""Trigger types: one module per type, behind one Scaler protocol and a registry."""
