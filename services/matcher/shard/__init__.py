"""Sharding of the matcher (issue #15): which shard holds which faces (`partition`), how a
match is routed to shards and merged (`routing`), and a shard's own side (`member`).

Plain code without network except `member`, which watches the shard map for a shard process.
"""
