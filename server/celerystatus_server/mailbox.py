"""Celery remote control, several commands in one round trip.

Celery's ``inspect()`` sends one broadcast per command and waits for each in
turn; with no ``limit`` it waits the whole timeout every time. Here every
command of a round is published at once, each with its own reply ticket, and a
single consumer collects the replies until each ticket has heard from every
worker it was sent to, or the deadline passes.

The wire format (method/arguments/destination/ticket/reply_to with the
``clock`` and ``expires`` headers) is Celery's pidbox protocol, so stock
workers answer these messages exactly as they answer ``celery inspect``.

On Redis (6.2 or later) replies are read in batches instead of through
kombu's consumer, which costs one blocking pop and one event-loop turn per
reply: one ``BRPOP`` waits for the first reply and ``RPOP key count``, in the
same pipeline, takes whatever else has arrived, until every ticket is answered;
the round's commands are published in one pipeline too. A plain ``BRPOP``
with a timeout also leaves nothing pending on the connection, so a round that
waited out its timeout does not cost a new connection.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .celery_api import (
    Channel,
    Connection,
    Message,
    Producer,
    Queue,
    loads,
    new_consumer,
    new_producer,
    new_queue,
    prepare_accept_content,
)

#: Replies taken per RPOP; a round's replies usually all fit in one.
REPLY_BATCH = 256


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
    #: False when a read may still be pending on the connection (kombu's drain timed out).
    reusable: bool = True


class Mailbox:
    """Sends commands through a Celery app's control mailbox and gathers replies."""

    def __init__(self, app: Any) -> None:
        self._mailbox = app.control.mailbox
        # A stable reply address for this process: kombu derives one from the calling
        # thread, which would leave a new reply binding behind for every round thread.
        self.oid = uuid.uuid4().hex
        self._declared_on: object = None
        self._accept = prepare_accept_content(self._mailbox.accept)
        #: Whether the Redis server behind a channel takes RPOP with a count (6.2+).
        self._batch_on: tuple[object, bool] | None = None

    def reply_queue(self) -> Queue:
        mb = self._mailbox
        return new_queue(
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

        def on_reply(body: Any, message: Message) -> None:
            headers = message.headers or {}
            mb.clock.adjust(headers.get("clock") or 0)
            ticket = headers.get("ticket")
            command = tickets.get(ticket) if isinstance(ticket, str) else None
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

        batched = self._batches(conn, channel)
        consumer = None
        if not batched:
            consumer = new_consumer(channel, [queue], accept=mb.accept, no_ack=True, callbacks=[on_reply])
            consumer.consume()
        try:
            producer = new_producer(channel, auto_declare=False)
            expires = time.time() + timeout
            # kombu 5.7+ pipelines a batch (one round trip on Redis for the whole round).
            batch = getattr(producer, "batch", None)
            with batch() if batch is not None else contextlib.nullcontext():
                self._publish(producer, commands, tickets, expires)
            if not tickets:
                timed_out = False
            elif batched:
                timed_out = self._read_batches(channel, queue.name, on_reply, complete, deadline)
            else:
                timed_out = self._drain(conn, complete, deadline)
        finally:
            if consumer is not None:
                try:
                    consumer.cancel()
                except Exception:
                    pass
        return RoundReplies(replies, timed_out, time.monotonic() - started, reusable=batched or not timed_out)

    def _publish(
        self, producer: Producer, commands: Sequence[Command], tickets: dict[str, Command], expires: float
    ) -> None:
        mb = self._mailbox
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

    @staticmethod
    def _drain(conn: Connection, complete: Callable[[], bool], deadline: float) -> bool:
        """kombu's consumer path (AMQP, old Redis); True when the deadline passed."""
        while not complete():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            try:
                conn.drain_events(timeout=remaining)
            except TimeoutError:
                return True
        return False

    def _batches(self, conn: Connection, channel: Channel) -> bool:
        if conn.transport.driver_type != "redis":
            return False
        if self._batch_on is None or self._batch_on[0] is not channel:
            version = str(channel.client.info("server").get("redis_version", "0"))
            parts = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
            self._batch_on = (channel, parts >= (6, 2))
        return self._batch_on[1]

    def _read_batches(
        self,
        channel: Channel,
        queue: str,
        on_reply: Callable[[Any, Message], None],
        complete: Callable[[], bool],
        deadline: float,
    ) -> bool:
        """Pop replies in batches until ``complete()``; True when the deadline passed."""
        client = channel.client
        # Replies carry no priority, so they land in the queue's base list;
        # BRPOP still watches every priority list, as kombu's consumer would.
        keys = [channel._q_for_pri(queue, pri) for pri in channel.priority_steps]
        # Below the socket timeout, so a BRPOP that waits its full time is not a socket error.
        longest = max(0.05, float(channel.connection.client.transport_options.get("socket_timeout") or 1.0) * 0.8)
        while not complete():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            # One round trip per wake-up: Redis runs a connection's commands in
            # order, so the RPOP takes what else arrived once the BRPOP returns.
            with client.pipeline(transaction=False) as pipe:
                pipe.brpop(keys, timeout=min(remaining, longest))
                pipe.rpop(queue, REPLY_BATCH)
                popped, more = pipe.execute()
            raw = ([popped[1]] if popped else []) + list(more or ())
            for item in raw:
                message = channel.message_to_python(loads(item))
                message.accept = self._accept
                on_reply(message.decode(), message)
        return False
