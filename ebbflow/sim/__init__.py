"""The simulator: real traces replayed against the real controllers in virtual time."""
