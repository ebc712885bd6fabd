"""Webhooks: endpoints, the event outbox, signing and the dispatcher that delivers events."""
