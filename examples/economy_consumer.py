#!/usr/bin/env python3
"""A game economy's reward consumer: grants every earn's rewards exactly once.

Laurel appends a `reward` entry to its OUTPUT stream for each earn of an achievement with
rewards, and a `reward_claimed` entry when a player claims rewards marked `claim: true`
(docs/wire.md, "Rewards"). This consumer reads OUTPUT through a durable JetStream
consumer and grants:

- a `reward` with `claim: false` as soon as it arrives;
- a `reward_claimed` (the claim of a `claim: true` reward) when it arrives;

each **once per `unlock_id`**: the grant and the record of the unlock id commit in one
SQLite transaction, and an unlock id already recorded is skipped. A redelivery (this
process killed before its ack) or a re-emission by Laurel (an engine that crashed between
two appends) is therefore never paid twice, and nothing acknowledged is lost.

    pip install nats-py msgpack
    python3 examples/economy_consumer.py --nats nats://127.0.0.1:4222 --db economy.sqlite

Every grant is printed as one JSON line. `--idle-exit SECONDS` stops after that long
without a message (for tests and batch runs); without it the consumer runs until killed.
"""

import argparse
import asyncio
import json
import sqlite3

import msgpack
import nats
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy


def open_db(path):
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE IF NOT EXISTS granted (unlock_id TEXT PRIMARY KEY, player_id TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS wallet (
            player_id TEXT NOT NULL, currency TEXT NOT NULL, amount INTEGER NOT NULL,
            PRIMARY KEY (player_id, currency));
        CREATE TABLE IF NOT EXISTS items (player_id TEXT NOT NULL, item TEXT NOT NULL);
        """
    )
    return db


def grant(db, entry):
    """Grants an entry's rewards in one transaction; False when its unlock was granted."""
    unlock_id, player = entry["unlock_id"], entry["player_id"]
    with db:  # one transaction: the record and the grant, or neither
        try:
            db.execute("INSERT INTO granted VALUES (?, ?)", (unlock_id, player))
        except sqlite3.IntegrityError:
            return False
        for reward in entry["rewards"]:
            if "currency" in reward:
                db.execute(
                    "INSERT INTO wallet VALUES (?, ?, ?) ON CONFLICT (player_id, currency)"
                    " DO UPDATE SET amount = amount + excluded.amount",
                    (player, reward["currency"], int(reward.get("amount", 0))),
                )
            if "item" in reward:
                db.execute("INSERT INTO items VALUES (?, ?)", (player, reward["item"]))
    return True


def payable(entry):
    """Whether an OUTPUT entry pays rewards now."""
    kind = entry.get("type")
    return (kind == "reward" and not entry.get("claim")) or kind == "reward_claimed"


async def run(args):
    db = open_db(args.db)
    nc = await nats.connect(args.nats)
    js = nc.jetstream()
    stream = f"{args.stream_prefix}_OUTPUT"
    # A durable consumer: its position survives this process; every entry is acknowledged
    # only once its grant is committed.
    await js.add_consumer(
        stream,
        ConsumerConfig(
            durable_name=args.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
        ),
    )
    sub = await js.pull_subscribe_bind(durable=args.durable, stream=stream)
    idle = 0.0
    while args.idle_exit is None or idle < args.idle_exit:
        try:
            msgs = await sub.fetch(256, timeout=1)
        except (NatsTimeout, asyncio.TimeoutError):  # nats-py raises either when idle
            idle += 1
            continue
        idle = 0.0
        for msg in msgs:
            entry = msgpack.unpackb(msg.data, raw=False)
            if payable(entry) and grant(db, entry):
                print(json.dumps({"granted": entry["unlock_id"], "player_id": entry["player_id"],
                                  "rewards": entry["rewards"]}), flush=True)
            await msg.ack()
    await nc.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nats", default="nats://127.0.0.1:4222")
    parser.add_argument("--stream-prefix", default="LAUREL")
    parser.add_argument("--durable", default="economy")
    parser.add_argument("--db", default="economy.sqlite")
    parser.add_argument("--idle-exit", type=float, default=None)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
