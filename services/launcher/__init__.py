"""Starting the platform on one machine: `luna`, the supervisor and the embedded servers.

No service imports this package; it imports the services only as `python -m services.<name>`
command lines, and knows their addresses and listeners through `services.common.config`.
"""
