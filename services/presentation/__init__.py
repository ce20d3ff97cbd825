"""What the dashboard and the audit tools show alike, below both: the pictures (``charts``, with the
visit windows they draw, ``schedule``) and where a participant stands (``lifecycle``)."""
