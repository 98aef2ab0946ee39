"""The bytes a framer has received and not yet consumed, shared by every framer (sans-IO).

A framer appends each chunk it is fed, scans from :attr:`ReceiveBuffer.start`
with indexes into :attr:`ReceiveBuffer.data`, and tells the buffer where it
stopped (:meth:`~ReceiveBuffer.consume`)::

    data:  | consumed ........ | unconsumed ....................... |
           0                 start                              len(data)
    stream offset of data[i] = base + i

Consuming only moves ``start``; the consumed prefix is deleted when the next
chunk arrives and it has grown to half of the buffer (or to all of it), so
indexes stay valid for a whole scan and the copying stays linear in the
input.  Bytes the framer skips are counted as one run of noise and reported
once as :class:`~decoders.errors.NotAFrame` (:meth:`~ReceiveBuffer.skip`,
:meth:`~ReceiveBuffer.report_noise`); after a bad frame the bytes it claimed
can be absorbed silently (:meth:`~ReceiveBuffer.reject`), since its error
already covers them.

Length-delimited framers (HDLC, M-Bus, raw APDUs) bound what they wait for
by the length fields they parse; a delimiter-delimited framer (P1 telegrams,
``/`` ... ``!CRC``) finds its delimiters with :meth:`~ReceiveBuffer.search`,
which does not rescan what it searched before, and gives up on a candidate
once :meth:`~ReceiveBuffer.full` says it has spanned :attr:`cap` bytes.
"""

from __future__ import annotations

from ..errors import NotAFrame

#: absorb every skipped byte up to the next good frame (see :meth:`ReceiveBuffer.reject`)
ALL = 1 << 62


def noise_error(count: int, offset: int, what: str, hint: str) -> NotAFrame:
    """The report for ``count`` bytes at stream ``offset`` that are not part of any ``what``."""
    return NotAFrame(
        f"{count} byte(s) at offset {offset} are not part of any {what} ({hint})", offset=offset, length=count
    )


class ReceiveBuffer:
    """One framer's received bytes: a bytearray with a start offset and the stream offset of its first byte.

    ``what`` names the framer's unit ("HDLC frame") and ``hint`` the likely
    causes of noise, for the :class:`NotAFrame` reports.  ``cap`` is the
    largest candidate the framer waits for: with the unprocessed part of
    the last chunk, what the buffer holds after a scan stays below
    ``cap + len(chunk)``.
    """

    __slots__ = (
        "data", "start", "base", "cap", "what", "hint",
        "_noise_count", "_noise_start", "_absorb", "_needle", "_from", "_searched",
    )  # fmt: skip

    def __init__(self, what: str, hint: str, cap: int) -> None:
        self.data = bytearray()
        self.start = 0  #: index in :attr:`data` of the first unconsumed byte
        self.base = 0  #: stream offset of ``data[0]``
        self.cap = cap
        self.what = what
        self.hint = hint
        self._noise_count = 0
        self._noise_start = 0
        self._absorb = 0  # skipped bytes still to be absorbed by the last rejected frame's error
        self._needle: bytes | None = None  # the resumable search: what, from where, searched up to where
        # (``_from`` and ``_searched`` are stream offsets)
        self._from = 0
        self._searched = 0

    # -- receiving and consuming ------------------------------------------------------------------
    def append(self, chunk: bytes | bytearray | memoryview) -> None:
        """Add received bytes, first deleting the consumed prefix once it is half the buffer (or all of it)."""
        start = self.start
        if start:
            data = self.data
            if start == len(data):
                data.clear()
            elif start + start >= len(data):
                del data[:start]
            else:
                data += chunk
                return
            self.base += start
            self.start = 0
        self.data += chunk

    def consume(self, i: int) -> None:
        """Everything before ``data[i]`` is dealt with (reported, framed or skipped)."""
        self.start = i

    def __len__(self) -> int:
        """Bytes received and not yet consumed."""
        return len(self.data) - self.start

    def offset(self, i: int) -> int:
        """Stream offset of ``data[i]`` (for frames and error positions)."""
        return self.base + i

    def full(self, i: int) -> bool:
        """The candidate starting at ``data[i]`` already spans :attr:`cap` bytes: stop waiting for its end."""
        return len(self.data) - i >= self.cap

    def find(self, needle: bytes | int, i: int | None = None, end: int | None = None) -> int:
        """Index of ``needle`` in ``data[i:end]`` (``i`` defaults to :attr:`start`), or -1."""
        return self.data.find(needle, self.start if i is None else i, len(self.data) if end is None else end)

    def search(self, needle: bytes, i: int | None = None) -> int:
        """:meth:`find` for a delimiter that may not have arrived yet, resumable across chunks.

        Asked again for the same ``needle`` from the same ``i``, it searches
        only the bytes that arrived since (or returns what it found), so
        waiting for a delimiter costs linear work however small the chunks.
        """
        data = self.data
        base = self.base
        i = self.start if i is None else i
        frm = i
        if self._needle == needle and self._from == base + i:  # remembered as stream offsets: compaction moves indexes
            frm = max(i, self._searched - base)
        found = data.find(needle, frm)
        self._needle, self._from = needle, base + i
        self._searched = base + (max(i, len(data) - len(needle) + 1) if found == -1 else found)
        return found

    def take(self, i: int, j: int) -> bytes:
        """``data[i:j]`` as bytes, consumed."""
        self.start = j
        return bytes(self.data[i:j])

    # -- noise ----------------------------------------------------------------------------------
    def skip(self, i: int, n: int) -> None:
        """``n`` bytes at ``data[i]`` belong to no frame: noise, unless the last rejected frame absorbs them."""
        if self._absorb:
            take = n if n < self._absorb else self._absorb
            self._absorb -= take
            n -= take
            i += take
        if n > 0:
            if not self._noise_count:
                self._noise_start = self.base + i
            self._noise_count += n

    def report_noise(self, out: list) -> None:
        """Append the pending run of noise (if any) to ``out`` as one NotAFrame and start a new run."""
        if self._noise_count:
            out.append(noise_error(self._noise_count, self._noise_start, self.what, self.hint))
            self._noise_count = 0

    def settle(self, out: list, absorb: int = 0) -> None:
        """A good frame begins here: report the noise before it; the next ``absorb`` skipped bytes are
        its own (a trailer some senders append, such as a P1 gateway's after a telegram without CRC)."""
        if self._noise_count:
            out.append(noise_error(self._noise_count, self._noise_start, self.what, self.hint))
            self._noise_count = 0
        self._absorb = absorb

    def reject(self, out: list, err, absorb: int = ALL) -> None:
        """Report the noise before a bad frame, then its error; the next ``absorb`` skipped bytes are its own."""
        if self._noise_count:
            out.append(noise_error(self._noise_count, self._noise_start, self.what, self.hint))
            self._noise_count = 0
        out.append(err)
        self._absorb = absorb

    def end(self, out: list) -> None:
        """End of input (after the framer's final scan): report the noise and drop every byte."""
        self.report_noise(out)
        self.base += len(self.data)
        self.data.clear()
        self.start = 0
        self._absorb = 0
        self._needle = None


__all__ = ["ALL", "ReceiveBuffer"]


class BufferFramer:
    """What every framer on a :class:`ReceiveBuffer` does the same way: ``feed`` appends and scans,
    ``flush`` scans to the end and reports what is left, ``buffered`` says how much is held.

    A framer sets ``self._rb`` and writes ``_scan(out, final)``: turn what the buffer holds into
    frames and errors appended to ``out`` (``final``: no more bytes will come).
    """

    _rb: ReceiveBuffer

    def feed(self, data: bytes | bytearray | memoryview) -> list:
        self._rb.append(data)
        out: list = []
        self._scan(out, final=False)
        return out

    def flush(self) -> list:
        """End of input: report a pending partial frame and trailing noise."""
        out: list = []
        self._scan(out, final=True)
        self._rb.end(out)
        return out

    @property
    def buffered(self) -> int:
        """Bytes currently held (for tests of the buffer bound)."""
        return len(self._rb)

    def _scan(self, out: list, final: bool) -> None:
        raise NotImplementedError

