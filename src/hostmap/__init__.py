"""hostmap: live-migrate OpenStack instances until the cloud matches a host map."""

__version__ = "0.1.0"
