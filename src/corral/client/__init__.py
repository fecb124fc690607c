"""A small synchronous Python SDK for Corral's native API (used by the CLI).

from corral.client import CorralClient, CorralAPIError

with CorralClient("http://127.0.0.1:3000", token) as corral:
    job = corral.submit(command="echo hello")
    for event in corral.follow(job["id"]):
        ...
"""

from corral.client.client import CorralAPIError, CorralClient, EndEvent, OutputEvent

__all__ = ["CorralAPIError", "CorralClient", "EndEvent", "OutputEvent"]
