"""Version of mmvitq."""
__version__ = '0.1.0'
