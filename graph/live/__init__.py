"""Live: ``miniAppVersionChanged``'s side below the fields: one poller per watched key, shared by its subscribers.

``state`` turns a gateway outcome into what subscribers compare and receive; ``hub`` keeps one watch (and one poll
every ``GRAPH_LIVE_POLL_S``) per (merchant token, version, client) in a process; ``fleet`` makes it one poll per
key across instances sharing Redis (a lease per key, changes published to the others).
"""
