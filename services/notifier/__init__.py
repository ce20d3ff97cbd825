"""The notifier: findings delivered to their subscribers by email and signed webhooks.

It consumes the deviations topic in a consumer group of its own, writes one outbox row per
matching (subscription, finding) into SQLite and only then commits the Kafka offsets, and delivers
each row at least once with retries and exponential backoff; a row that keeps failing becomes a
dead letter, shown on ``/metrics`` and ``/operations``. The outbox key makes a finding read twice
(after a crash) one delivery, not two.
"""
