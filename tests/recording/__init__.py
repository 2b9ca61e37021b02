"""Recording the flow cassettes (tests/cassettes/<provider>/flows/) through the real gateway.

``python -m tests.recording`` (what ``nox -s record`` runs) records every flow from a
sandbox on loopback; ``--live`` records from the real services with credentials taken from
the environment. Secrets are scrubbed before anything is written (see ``scrubbing``).
tests/flows replays the same flows (``flows``) from these cassettes.
"""
