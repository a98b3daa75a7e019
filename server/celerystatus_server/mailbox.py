"""Celery remote control, several commands in one round trip.

Celery's ``inspect()`` sends one broadcast per command and waits for each in
turn; with no ``limit`` it waits the whole timeout every time. Here every
command of a round is published at once, each with its own reply ticket, and a
single consumer collects the replies until each ticket has heard from every
worker it was sent to, or the deadline passes.

The wire format (method/arguments/destination/ticket/reply_to with the
``clock`` and ``expires`` headers) is Celery's pidbox protocol, so stock
workers answer these messages exactly as they answer ``celery inspect``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kombu import Connection, Consumer, Producer, Queue


@dataclass(frozen=True)
class Command:
    """One remote-control command to send in a round."""

    method: str
    arguments: dict[str, Any] = field(default_factory=dict)
    #: Worker hostnames to ask; None asks every worker (and waits the whole timeout
    #: unless ``expected`` says how many answers to wait for).
    destination: tuple[str, ...] | None = None
    expected: int | None = None
    #: Key of this command's replies in :class:`RoundReplies`; defaults to the method.
    label: str = ""

    @property
    def key(self) -> str:
        return self.label or self.method

    def wanted(self) -> int | None:
        if self.destination is not None:
            return len(self.destination)
        return self.expected


@dataclass
class RoundReplies:
    """Replies by command key (label or method), then by worker hostname."""

    replies: dict[str, dict[str, Any]]
    #: True when the deadline passed before every expected reply arrived.
    timed_out: bool
    elapsed: float


class Mailbox:
    """Sends commands through a Celery app's control mailbox and gathers replies."""

    def __init__(self, app: Any) -> None:
        self._mailbox = app.control.mailbox
        # A stable reply address for this process: kombu derives one from the calling
        # thread, which would leave a new reply binding behind for every round thread.
        self.oid = uuid.uuid4().hex
        self._declared_on: object = None

    def reply_queue(self) -> Queue:
        mb = self._mailbox
        return Queue(
            f"{self.oid}.{mb.reply_exchange.name}",
            exchange=mb.reply_exchange,
            routing_key=self.oid,
            durable=False,
            exclusive=False,
            auto_delete=True,
            expires=mb.reply_queue_expires,
            message_ttl=mb.reply_queue_ttl,
        )

    def call(self, conn: Connection, commands: Sequence[Command], timeout: float) -> RoundReplies:
        started = time.monotonic()
        deadline = started + timeout
        mb = self._mailbox
        channel = conn.default_channel
        queue = self.reply_queue()(channel)
        # On Redis the queue's binding outlives a round, so declare once per connection;
        # AMQP deletes the auto-delete queue when the round's consumer is cancelled.
        if self._declared_on is not channel or conn.transport.driver_type != "redis":
            queue.declare()
            self._declared_on = channel

        tickets: dict[str, Command] = {}
        replies: dict[str, dict[str, Any]] = {c.key: {} for c in commands}
        heard: dict[str, int] = {}

        def on_reply(body: Any, message: Any) -> None:
            headers = message.headers or {}
            mb.clock.adjust(headers.get("clock") or 0)
            command = tickets.get(headers.get("ticket"))
            if command is None or not isinstance(body, dict):
                return  # a late reply to an earlier round
            for hostname, reply in body.items():
                replies[command.key][hostname] = reply
            heard[headers["ticket"]] = heard.get(headers["ticket"], 0) + len(body)

        def complete() -> bool:
            for ticket, command in tickets.items():
                wanted = command.wanted()
                if wanted is None or heard.get(ticket, 0) < wanted:
                    return False
            return True

        consumer = Consumer(channel, [queue], accept=mb.accept, no_ack=True, callbacks=[on_reply])
        consumer.consume()
        try:
            producer = Producer(channel, auto_declare=False)
            expires = time.time() + timeout
            for command in commands:
                if command.destination is not None and not command.destination:
                    continue  # nobody to ask
                ticket = uuid.uuid4().hex
                tickets[ticket] = command
                producer.publish(
                    {
                        "method": command.method,
                        "arguments": command.arguments,
                        "destination": list(command.destination) if command.destination else None,
                        "pattern": None,
                        "matcher": None,
                        "ticket": ticket,
                        "reply_to": {"exchange": mb.reply_exchange.name, "routing_key": self.oid},
                    },
                    exchange=mb.exchange.name,
                    declare=[mb.exchange],
                    headers={"clock": mb.clock.forward(), "expires": expires},
                    serializer=mb.serializer,
                    retry=False,
                )
            timed_out = False
            while tickets and not complete():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    timed_out = True
                    break
                try:
                    conn.drain_events(timeout=remaining)
                except TimeoutError:
                    timed_out = True
                    break
        finally:
            try:
                consumer.cancel()
            except Exception:
                pass
        return RoundReplies(replies, timed_out, time.monotonic() - started)
