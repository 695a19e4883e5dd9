"""Publishing a few records from the command line, with one-line errors when Kafka is away."""

from __future__ import annotations

import asyncio

import click
from aiokafka import AIOKafkaProducer

from fraudapp.kafkaconn import KafkaUnreachable, explain_connection_errors
from fraudapp.settings import Settings


async def publish(settings: Settings, topic: str, records: list[tuple[bytes, bytes]],
                  headers: list[tuple[str, bytes]] | None = None) -> None:
    """Send `(key, value)` records to `topic` and wait until Kafka has them all (acks=all)."""
    kafka = settings.kafka_client_options()
    producer = AIOKafkaProducer(**kafka, acks="all", enable_idempotence=True, linger_ms=5)
    try:
        try:
            with explain_connection_errors(kafka):
                await producer.start()
        except KafkaUnreachable as exc:
            raise click.ClickException(str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - one line for the user, not a traceback
            raise click.ClickException(f"cannot reach Kafka at {settings.bootstrap_servers}: {exc}") from None
        futures = [await producer.send(topic, key=key, value=value, headers=headers) for key, value in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
