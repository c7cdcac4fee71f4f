"""C2SP signed notes (c2sp.org/signed-note) and tlog checkpoints (c2sp.org/tlog-checkpoint).

Signing is Ed25519 (signature type 0x01). Verification also understands the key types other logs
publish, so a checkpoint of any C2SP log can be checked: ECDSA P-256 (0x02), Ed25519
cosignature/v1 (0x04, witnesses) and RFC 6962 tree-head signatures (0x05, static-ct-api).
All cryptography is the ``cryptography`` package's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from collections.abc import Iterable, Sequence
from enum import IntEnum

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict

from ._errors import NoteError

_SIG_PREFIX = "\u2014 "
_MAX_SIGNATURES = 100
_SIZE_RE = re.compile(r"0|[1-9][0-9]*")
_UINT64_MAX = 2**64 - 1


class SignatureType(IntEnum):
    """The algorithm byte of a C2SP verifier key."""

    ED25519 = 0x01
    ECDSA_P256 = 0x02
    COSIGNATURE_V1 = 0x04
    RFC6962 = 0x05


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as error:
        raise NoteError(f"{what} is not valid base64: {text!r}") from error


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _valid_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def _name_key_id(name: str, material: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + material).digest()[:4]


class VerifierKey:
    """A public verifier key: ``<name>+<key id hex>+<base64(type || key)>`` (a *vkey*)."""

    __slots__ = ("_public", "key_id", "material", "name", "type")

    def __init__(self, name: str, type_: SignatureType, material: bytes) -> None:
        if not _valid_name(name):
            raise NoteError(f"key name {name!r} is empty or contains '+' or whitespace")
        self.name = name
        self.type = type_
        self.material = material
        """The key bytes after the type byte (raw Ed25519 key or SPKI DER)."""
        self._public: Ed25519PublicKey | ec.EllipticCurvePublicKey
        if type_ in (SignatureType.ED25519, SignatureType.COSIGNATURE_V1):
            if len(material) != 32:
                raise NoteError(f"key {name}: an Ed25519 key has 32 bytes, not {len(material)}")
            self._public = Ed25519PublicKey.from_public_bytes(material)
            self.key_id = _name_key_id(name, bytes([type_]) + material)
        else:
            try:
                public = serialization.load_der_public_key(material)
            except ValueError as error:
                raise NoteError(f"key {name}: not a DER public key") from error
            if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != (
                "secp256r1"
            ):
                raise NoteError(f"key {name}: expected an ECDSA P-256 key")
            self._public = public
            if type_ is SignatureType.ECDSA_P256:
                self.key_id = hashlib.sha256(material).digest()[:4]
            else:
                log_id = hashlib.sha256(material).digest()
                self.key_id = _name_key_id(name, bytes([type_]) + log_id)

    @classmethod
    def parse(cls, vkey: str) -> VerifierKey:
        """Parse a vkey string; the key id must match the key."""
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3:
            raise NoteError(f"verifier key {vkey!r} does not have the form name+keyid+key")
        name, key_id_hex, key_b64 = parts
        if not re.fullmatch(r"[0-9a-f]{8}", key_id_hex):
            raise NoteError(f"verifier key {vkey!r}: key id {key_id_hex!r} is not 8 hex digits")
        raw = _b64decode(key_b64, f"verifier key {name!r}")
        if not raw:
            raise NoteError(f"verifier key {name!r} is empty")
        try:
            type_ = SignatureType(raw[0])
        except ValueError as error:
            raise NoteError(f"verifier key {name!r}: unknown algorithm 0x{raw[0]:02x}") from error
        key = cls(name, type_, raw[1:])
        if key.key_id.hex() != key_id_hex:
            raise NoteError(
                f"verifier key {name!r}: key id {key_id_hex} does not match the key "
                f"(expected {key.key_id.hex()})"
            )
        return key

    def __str__(self) -> str:
        return f"{self.name}+{self.key_id.hex()}+{_b64(bytes([self.type]) + self.material)}"

    def __repr__(self) -> str:
        return f"VerifierKey({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VerifierKey) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def verify(self, text: bytes, signature: bytes) -> bool:
        """Whether ``signature`` (without the 4-byte key id) signs the note ``text``."""
        try:
            if self.type is SignatureType.ED25519:
                assert isinstance(self._public, Ed25519PublicKey)
                self._public.verify(signature, text)
            elif self.type is SignatureType.COSIGNATURE_V1:
                assert isinstance(self._public, Ed25519PublicKey)
                if len(signature) != 72:
                    return False
                (timestamp,) = struct.unpack(">Q", signature[:8])
                message = b"cosignature/v1\ntime %d\n" % timestamp + text
                self._public.verify(signature[8:], message)
            elif self.type is SignatureType.ECDSA_P256:
                assert isinstance(self._public, ec.EllipticCurvePublicKey)
                self._public.verify(signature, text, ec.ECDSA(hashes.SHA256()))
            else:
                return self._verify_rfc6962(text, signature)
        except InvalidSignature:
            return False
        return True

    def _verify_rfc6962(self, text: bytes, signature: bytes) -> bool:
        assert isinstance(self._public, ec.EllipticCurvePublicKey)
        if len(signature) < 12:
            return False
        timestamp, hash_alg, sig_alg, length = struct.unpack(">QBBH", signature[:12])
        der = signature[12:]
        if hash_alg != 4 or sig_alg != 3 or length != len(der):
            return False
        try:
            checkpoint = Checkpoint.parse(text.decode())
        except (NoteError, UnicodeDecodeError):
            return False
        if checkpoint.origin != self.name or checkpoint.extensions:
            return False
        signed = struct.pack(">BBQQ", 0, 1, timestamp, checkpoint.tree_size) + checkpoint.root_hash
        try:
            self._public.verify(der, signed, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True


class Signer:
    """An Ed25519 note signer (private key), written as ``PRIVATE+KEY+<name>+<id>+<base64>``."""

    __slots__ = ("_private", "verifier")

    def __init__(self, name: str, private: Ed25519PrivateKey) -> None:
        self._private = private
        raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.verifier = VerifierKey(name, SignatureType.ED25519, raw)

    @classmethod
    def generate(cls, name: str) -> Signer:
        """A fresh random key named ``name`` (by convention the log's origin)."""
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def parse(cls, skey: str) -> Signer:
        """Parse a private key string; its key id must match."""
        parts = skey.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteError("signer key does not have the form PRIVATE+KEY+name+keyid+key")
        _, _, name, key_id_hex, key_b64 = parts
        raw = _b64decode(key_b64, f"signer key {name!r}")
        if len(raw) != 33 or raw[0] != SignatureType.ED25519:
            raise NoteError(f"signer key {name!r} is not an Ed25519 seed (0x01 + 32 bytes)")
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(raw[1:]))
        if signer.key_id.hex() != key_id_hex:
            raise NoteError(f"signer key {name!r}: key id {key_id_hex} does not match the key")
        return signer

    @property
    def name(self) -> str:
        """The key name."""
        return self.verifier.name

    @property
    def key_id(self) -> bytes:
        """The 4-byte key id."""
        return self.verifier.key_id

    def skey(self) -> str:
        """The private key string; keep it secret."""
        seed = self._private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        material = _b64(bytes([SignatureType.ED25519]) + seed)
        return f"PRIVATE+KEY+{self.name}+{self.key_id.hex()}+{material}"

    def sign(self, text: bytes) -> bytes:
        """Signature bytes for ``text``, without the key id."""
        return self._private.sign(text)


class NoteSignature(BaseModel):
    """One signature line of a signed note."""

    model_config = ConfigDict(frozen=True)

    name: str
    """Key name the line claims."""
    key_id: str
    """The 4-byte key id, hex."""
    signature: bytes
    """The signature bytes after the key id."""


class Note(BaseModel):
    """A parsed signed note: its text and its signature lines (verified or not)."""

    model_config = ConfigDict(frozen=True)

    text: str
    """The signed text, ending in a newline."""
    signatures: tuple[NoteSignature, ...]
    """All signature lines in order, duplicates included."""


class OpenedNote(BaseModel):
    """A note whose signatures were checked against a set of verifier keys."""

    model_config = ConfigDict(frozen=True)

    text: str
    verified: tuple[str, ...]
    """Names of the known keys whose signatures verified (each once)."""
    verified_keys: tuple[str, ...]
    """The vkeys of those keys."""
    unverified: tuple[NoteSignature, ...]
    """Signature lines from unknown keys, ignored (identical lines counted once)."""


def parse_note(data: bytes | str) -> Note:
    """Split a signed note into text and signature lines; raises `NoteError` if malformed."""
    raw = data.encode() if isinstance(data, str) else data
    try:
        message = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise NoteError("malformed note: not valid UTF-8") from error
    if any(c < " " and c != "\n" for c in message):
        raise NoteError("malformed note: contains a control character")
    split = message.rfind("\n\n")
    if split < 0:
        raise NoteError("malformed note: no blank line before the signatures")
    text, block = message[: split + 1], message[split + 2 :]
    if not block or not block.endswith("\n"):
        raise NoteError("malformed note: no signature lines, or no final newline")
    signatures = []
    for number, line in enumerate(block[:-1].split("\n"), start=1):
        if not line.startswith(_SIG_PREFIX):
            raise NoteError(f"malformed note: signature line {number} does not start with '— '")
        name, _, b64 = line[len(_SIG_PREFIX) :].partition(" ")
        if not _valid_name(name) or not b64:
            raise NoteError(f"malformed note: signature line {number} has a bad key name")
        sig = _b64decode(b64, f"signature line {number}")
        if len(sig) < 5:
            raise NoteError(f"malformed note: signature line {number} is too short")
        signatures.append(NoteSignature(name=name, key_id=sig[:4].hex(), signature=sig[4:]))
        if len(signatures) > _MAX_SIGNATURES:
            raise NoteError(f"malformed note: more than {_MAX_SIGNATURES} signatures")
    return Note(text=text, signatures=tuple(signatures))


def open_note(data: bytes | str, keys: Iterable[VerifierKey]) -> OpenedNote:
    """Parse a note and check its signatures.

    A signature by a known key must verify (else `NoteError`); lines from unknown keys are
    ignored; at least one known key must have signed.
    """
    note = parse_note(data)
    known = {(k.name, k.key_id.hex()): k for k in keys}
    text = note.text.encode()
    verified: dict[tuple[str, str], VerifierKey] = {}
    unverified: list[NoteSignature] = []
    for sig in note.signatures:
        key = known.get((sig.name, sig.key_id))
        if key is None:
            if sig not in unverified:
                unverified.append(sig)
            continue
        if not key.verify(text, sig.signature):
            raise NoteError(f"invalid signature for key {sig.name}+{sig.key_id}")
        verified.setdefault((sig.name, sig.key_id), key)
    if not verified:
        raise NoteError("note has no verifiable signatures (no signature by a known key)")
    return OpenedNote(
        text=note.text,
        verified=tuple(k.name for k in verified.values()),
        verified_keys=tuple(str(k) for k in verified.values()),
        unverified=tuple(unverified),
    )


def sign_note(text: str, signers: Sequence[Signer]) -> str:
    """Sign ``text`` (which must end in a newline) with each signer; returns the signed note."""
    if not text.endswith("\n") or any(c < " " and c != "\n" for c in text):
        raise NoteError("note text must end in a newline and contain no control characters")
    if not signers:
        raise NoteError("a note needs at least one signer")
    lines = [f"{_SIG_PREFIX}{s.name} {_b64(s.key_id + s.sign(text.encode()))}\n" for s in signers]
    return text + "\n" + "".join(lines)


class Cosignature(BaseModel):
    """A parsed cosignature/v1 signature: key id, timestamp and Ed25519 signature."""

    model_config = ConfigDict(frozen=True)

    key_id: str
    timestamp: int
    """Seconds since the Unix epoch when the witness signed."""
    signature: bytes


def parse_cosignature(signature_b64: str) -> Cosignature:
    """Parse the base64 of a cosignature/v1 line (key id, u64 timestamp, 64-byte signature)."""
    raw = _b64decode(signature_b64, "cosignature")
    if len(raw) != 4 + 8 + 64:
        raise NoteError(f"a cosignature/v1 signature has 76 bytes, not {len(raw)}")
    (timestamp,) = struct.unpack(">Q", raw[4:12])
    return Cosignature(key_id=raw[:4].hex(), timestamp=timestamp, signature=raw[12:])


class Checkpoint(BaseModel):
    """A tlog checkpoint body: origin, tree size, root hash and optional extension lines."""

    model_config = ConfigDict(frozen=True)

    origin: str
    """Unique name of the log."""
    tree_size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        """The note text of this checkpoint."""
        lines = [self.origin, str(self.tree_size), _b64(self.root_hash), *self.extensions]
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, text: str, *, hash_size: int | None = 32) -> Checkpoint:
        """Parse a checkpoint body; ``hash_size=None`` accepts a root hash of any length."""
        if not text.endswith("\n"):
            raise NoteError("checkpoint: the body must end in a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise NoteError("checkpoint: needs origin, tree size and root hash lines")
        origin, size_text, root_b64, *extensions = lines
        if not origin:
            raise NoteError("checkpoint: the origin line is empty")
        if not _SIZE_RE.fullmatch(size_text) or int(size_text) > _UINT64_MAX:
            raise NoteError(f"checkpoint: tree size {size_text!r} is not a decimal uint64")
        root = _b64decode(root_b64, "checkpoint root hash")
        if hash_size is not None and len(root) != hash_size:
            raise NoteError(f"checkpoint: root hash has {len(root)} bytes, not {hash_size}")
        if any(not line for line in extensions):
            raise NoteError("checkpoint: empty extension line")
        return cls(
            origin=origin,
            tree_size=int(size_text),
            root_hash=root,
            extensions=tuple(extensions),
        )


def open_checkpoint(
    note: str, keys: Iterable[VerifierKey], *, origin: str | None = None
) -> tuple[Checkpoint, OpenedNote]:
    """Verify a signed checkpoint note and parse its body; optionally require its origin."""
    opened = open_note(note, keys)
    checkpoint = Checkpoint.parse(opened.text)
    if origin is not None and checkpoint.origin != origin:
        raise NoteError(f"checkpoint origin {checkpoint.origin!r} is not {origin!r}")
    return checkpoint, opened
