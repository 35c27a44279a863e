"""The matcher proxy (LUNA's name): MatcherService in front of the matcher shards.

    python -m services.matcher.proxy      # LUNA_MATCHER_ADDRESS is where it listens

It routes each match to the shards holding its candidates, fans out in parallel and merges
the top k exactly (services/matcher/shard/routing.py); each shard's replicas sit behind one
round_robin channel and a call no replica answered (UNAVAILABLE) is tried again. The shard
map is LUNA_MATCHER_SHARD_MAP (reloaded when its version changes) or the environment
(LUNA_MATCHER_SHARD_ADDRESSES, LUNA_MATCHER_SPREAD_ACCOUNTS). With one matcher (`luna up`)
there is no proxy: the gateway talks to the matcher directly.
"""
