"""hostmap: live-migrate OpenStack instances until the cloud matches a host map."""

import logging

__version__ = "0.1.0"

# A library never prints through Python's last-resort handler: the CLI attaches handlers where it logs.
logging.getLogger(__name__).addHandler(logging.NullHandler())
