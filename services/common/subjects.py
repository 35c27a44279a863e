"""NATS subject names: one table so publishers and subscribers cannot drift apart."""

# Core NATS (fire-and-forget): credentials changed; gateways drop their auth caches.
AUTH_CHANGED = "luna.auth.changed"
# JetStream subjects.
FACES_CHANGES_PREFIX = "luna.faces.changes"
EVENTS_PREFIX = "luna.events"
TASKS_WORK_PREFIX = "luna.tasks.work"
# Core NATS (fire-and-forget, like LUNA's Sender): events published through the Sender API.
# `<prefix>.events.<account_id>` carries user events, `<prefix>.general` general events.
SENDER_PREFIX = "luna.sender"
