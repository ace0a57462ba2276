"""Webhooks: an outbox the inventory, the builds and the actions write events to (in their
own transaction, so discovery never waits on a receiver), and a dispatcher that delivers
them as signed CloudEvents, with retries (docs/webhooks.md)."""
