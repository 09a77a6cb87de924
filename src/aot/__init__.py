"""aot: Adversarial Opponent Training."""
__version__ = "0.1.0"
