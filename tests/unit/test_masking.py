"""Secret masking in a job's output: every occurrence, also cut across pipe reads."""

from __future__ import annotations

import asyncio

from corral.agent.masking import MASK, MIN_SECRET, SecretMasker, secret_patterns
from corral.agent.output import OutputForwarder
from corral.agent.spool import Chunk

SECRET = "hunter2-Value-99"


def _through(masker: SecretMasker, pieces: list[bytes]) -> bytes:
    return b"".join(masker.feed(piece) for piece in pieces) + masker.flush()


def test_item2_a_secret_split_at_every_byte_is_masked() -> None:
    text = f"before {SECRET} middle {SECRET}{SECRET} after".encode()
    expected = b"before *** middle ****** after"
    for cut in range(1, len(text)):
        masker = SecretMasker(secret_patterns([SECRET]))
        assert _through(masker, [text[:cut], text[cut:]]) == expected, cut
    one_byte_reads = [text[i : i + 1] for i in range(len(text))]
    assert _through(SecretMasker(secret_patterns([SECRET])), one_byte_reads) == expected


def test_item2_only_a_possible_secret_start_is_held_back() -> None:
    masker = SecretMasker(secret_patterns([SECRET]))
    assert masker.feed(b"progress: 10%") == b"progress: 10%"  # nothing held: no secret starts
    assert masker.feed(b" next hun") == b" next "  # "hun" may begin the secret
    assert masker.feed(b"gry\n") == b"hungry\n"
    assert masker.flush() == b""


def test_item2_short_secrets_are_not_masked_and_lines_of_long_ones_are() -> None:
    patterns = secret_patterns(["ab", "x" * MIN_SECRET, "line-one-key\nline-two-key"])
    assert b"ab" not in patterns
    masker = SecretMasker(patterns)
    out = _through(masker, [b"ab xxxx line-two-key line-one-key\nline-two-key"])
    assert out == b"ab " + MASK + b" *** ***"


class Collect:
    def __init__(self) -> None:
        self.chunks: list[Chunk] = []

    async def send(self, chunk: Chunk) -> bool:
        self.chunks.append(chunk)
        return False


def test_item2_the_forwarder_sends_no_secret_even_when_it_ends_the_output() -> None:
    async def run() -> bytes:
        sink = Collect()
        forwarder = OutputForwarder(sink, interval=0.01, secret_env={"S": SECRET})
        forwarder.feed("stdout", SECRET[:5].encode())
        await asyncio.sleep(0.05)  # a batch goes out meanwhile: the start is held back
        forwarder.feed("stdout", SECRET[5:].encode() + b" and hunt")
        await forwarder.close()
        return b"".join(c.data for c in sink.chunks if c.stream == "stdout")

    assert asyncio.run(run()) == b"*** and hunt"
