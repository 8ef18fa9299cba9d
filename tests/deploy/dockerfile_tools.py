"""Read the Dockerfile and .dockerignore, and replay an image build on the host.

No Docker engine runs in CI, so the deploy tests do what ``docker build`` would do
with the project's own files: parse the Dockerfile, lay out the build context that
``.dockerignore`` lets through, and run each stage's ``RUN`` steps in a scratch
directory that stands in for the stage's root filesystem.

The replay is faithful where it matters for catching a broken build:

- every ``RUN`` step runs, with ``/bin/sh -c`` and the stage's ``ENV``, and its
  exit status fails the replay;
- ``COPY`` reads only the filtered context (or an earlier stage), and a missing
  source fails the replay, as it fails ``docker build``;
- image paths that the Dockerfile owns (its ``WORKDIR`` and the paths it copies
  between stages) are moved under the scratch root, in commands and ``ENV`` alike;
- each stage starts from an empty root, so a later stage sees only what it copies.

What it cannot do: use the base image itself. The host's Python stands in for the
image's (same minor version, checked by the tests), ``pip`` outside a virtual
environment is refused rather than allowed to touch the host, and ``USER`` is
recorded, not switched to.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

# Docker's default shell for the shell form of RUN.
DEFAULT_SHELL = ["/bin/sh", "-c"]

# System directories for the replay's PATH. /usr/local is left out on purpose: on
# the host it holds unrelated tools, and in the image it holds only the base
# Python, which the shim directory provides instead.
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"

# Host variables that describe how this machine reaches the package registry;
# ``docker build`` gets the equivalent from the daemon's network and proxy set-up.
PASSTHROUGH_PREFIXES = ("PIP_", "SSL_CERT_", "REQUESTS_CA_BUNDLE", "OPENBLAS_")
PASSTHROUGH_PROXIES = {"http_proxy", "https_proxy", "no_proxy", "all_proxy"}

SUPPORTED = {
    "FROM",
    "ARG",
    "ENV",
    "RUN",
    "COPY",
    "WORKDIR",
    "USER",
    "EXPOSE",
    "HEALTHCHECK",
    "CMD",
    "LABEL",
    "SHELL",
}


class ReplayError(AssertionError):
    """A step that would make ``docker build`` fail."""


@dataclass
class Instruction:
    """One Dockerfile instruction, continuation lines joined."""

    keyword: str
    args: str
    line: int

    def flags(self) -> tuple[dict[str, str], str]:
        """Split leading ``--name=value`` flags from the rest of the arguments."""
        flags: dict[str, str] = {}
        rest = self.args
        while True:
            match = re.match(r"--([a-z-]+)(?:=(\S*))?\s+", rest)
            if match is None:
                return flags, rest
            flags[match.group(1)] = match.group(2) or ""
            rest = rest[match.end() :]

    def exec_form(self, text: str | None = None) -> list[str] | None:
        """The JSON array of the exec form, or None for the shell form."""
        text = self.args if text is None else text
        text = text.strip()
        if not text.startswith("["):
            return None
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return None
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return value
        return None


@dataclass
class Stage:
    """The instructions from one ``FROM`` to the next."""

    base: str
    name: str
    instructions: list[Instruction] = field(default_factory=list)

    def of(self, keyword: str) -> list[Instruction]:
        """The instructions with this keyword, in order."""
        return [item for item in self.instructions if item.keyword == keyword]


def parse_dockerfile(text: str) -> list[Stage]:
    """Split a Dockerfile into stages of instructions (escape character ``\\``)."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        # Comment lines end nothing: Docker drops them even inside a continuation.
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if not pending:
            start = number
        if raw.rstrip().endswith("\\"):
            pending.append(raw.rstrip()[:-1])
            continue
        pending.append(raw)
        joined = "".join(pending).strip()
        pending = []
        keyword, _, args = joined.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
    if pending:
        raise ReplayError("Dockerfile ends inside a line continuation")

    stages: list[Stage] = []
    for instruction in instructions:
        if instruction.keyword not in SUPPORTED:
            raise ReplayError(
                f"line {instruction.line}: {instruction.keyword} is not replayed"
            )
        if instruction.keyword == "FROM":
            _, rest = instruction.flags()
            words = rest.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else ""
            stages.append(Stage(words[0], name or str(len(stages))))
        elif not stages:
            if instruction.keyword != "ARG":
                raise ReplayError(f"line {instruction.line}: instruction before FROM")
        else:
            stages[-1].instructions.append(instruction)
    return stages


def expand_words(text: str, env: Mapping[str, str]) -> list[str]:
    """Split ``text`` into words the way Docker reads ENV, COPY and WORKDIR.

    Quotes group and are removed, ``\\`` escapes the next character, and ``$NAME``
    and ``${NAME}`` expand outside single quotes; unset names expand to nothing.
    """
    words: list[str] = []
    current: list[str] = []
    in_word = False
    quote = ""
    index = 0
    while index < len(text):
        char = text[index]
        if quote == "'":
            if char == "'":
                quote = ""
            else:
                current.append(char)
        elif char == "\\" and index + 1 < len(text):
            index += 1
            current.append(text[index])
            in_word = True
        elif char in "'\"" and quote in ("", char):
            quote = "" if quote else char
            in_word = True
        elif char == "$":
            match = re.match(r"\$(?:\{(\w+)\}|(\w+))", text[index:])
            if match is None:
                if text[index:].startswith("${"):
                    raise ReplayError(f"unsupported substitution in {text!r}")
                current.append(char)
            else:
                current.append(env.get(match.group(1) or match.group(2), ""))
                index += match.end() - 1
            in_word = True
        elif char.isspace() and not quote:
            if in_word:
                words.append("".join(current))
            current, in_word = [], False
        else:
            current.append(char)
            in_word = True
        index += 1
    if quote:
        raise ReplayError(f"unterminated quote in {text!r}")
    if in_word:
        words.append("".join(current))
    return words


def parse_env(instruction: Instruction, env: Mapping[str, str]) -> dict[str, str]:
    """The variables one ``ENV key=value ...`` instruction sets, expanded."""
    values: dict[str, str] = {}
    scope = dict(env)
    for word in expand_words(instruction.args, scope):
        name, equals, value = word.partition("=")
        if not equals:
            raise ReplayError(
                f"line {instruction.line}: use the ENV key=value form, not {word!r}"
            )
        # Docker expands every pair of one ENV against the environment before it.
        values[name] = value
    return values


def parse_healthcheck(instruction: Instruction) -> tuple[dict[str, str], list[str]]:
    """The options and the exec-form command of a ``HEALTHCHECK``."""
    flags, rest = instruction.flags()
    keyword, _, command = rest.partition(" ")
    argv = instruction.exec_form(command)
    if keyword.upper() != "CMD" or argv is None:
        raise ReplayError(f"line {instruction.line}: HEALTHCHECK CMD must be exec form")
    return flags, argv


def seconds(duration: str) -> float:
    """A Docker duration such as ``30s``, ``1m30s`` or ``500ms``, in seconds."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ReplayError(f"not a Docker duration: {duration!r}")
    return sum(float(number) * units[unit] for number, unit in parts)


# .dockerignore ------------------------------------------------------------------


@dataclass(frozen=True)
class IgnorePattern:
    """One .dockerignore line: a path pattern, possibly negated with ``!``."""

    regex: re.Pattern[str]
    text: str
    negated: bool


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    # Docker's rules: "**" spans any number of directories, "*" and "?" stay
    # inside one path component, "[...]" is a character class.
    out: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**/", index):
            out.append("(?:.*/)?")
            index += 3
            continue
        if pattern.startswith("**", index):
            out.append(".*")
            index += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.index("]", index + 1)
            body = pattern[index + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            index = end
        elif char == "\\" and index + 1 < len(pattern):
            index += 1
            out.append(re.escape(pattern[index]))
        else:
            out.append(re.escape(char))
        index += 1
    return re.compile("".join(out))


def read_dockerignore(text: str) -> list[IgnorePattern]:
    """Parse .dockerignore lines, cleaned the way Docker cleans them."""
    patterns: list[IgnorePattern] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        line = line[1:].strip() if negated else line
        cleaned = os.path.normpath(line).lstrip("/")
        if cleaned in ("", "."):
            continue
        patterns.append(IgnorePattern(_pattern_regex(cleaned), cleaned, negated))
    return patterns


def is_ignored(path: str, patterns: list[IgnorePattern]) -> bool:
    """Whether Docker leaves ``path`` (relative, ``/``-separated) out of the context.

    A pattern applies to a path when it matches the path or one of its parent
    directories, and the last pattern that applies decides.
    """
    parts = PurePosixPath(path).parts
    candidates = ["/".join(parts[: end + 1]) for end in range(len(parts))]
    ignored = False
    for pattern in patterns:
        if any(pattern.regex.fullmatch(candidate) for candidate in candidates):
            ignored = not pattern.negated
    return ignored


def _may_reinclude_below(directory: str, patterns: list[IgnorePattern]) -> bool:
    # Whether a negated pattern could bring back something inside an ignored
    # directory; if none can, the walk skips it (as Docker does), which keeps
    # .git and .venv from being read at all.
    for pattern in patterns:
        if not pattern.negated:
            continue
        if pattern.text.startswith(directory + "/") or pattern.text[0] in "*?[":
            return True
    return False


def context_files(root: Path, patterns: list[IgnorePattern]) -> Iterator[str]:
    """The files of the build context, relative to ``root``, sorted."""
    found: list[str] = []
    for current, dirs, files in os.walk(root):
        relative = Path(current).relative_to(root).as_posix()
        prefix = "" if relative == "." else relative + "/"
        kept = []
        for name in sorted(dirs):
            path = prefix + name
            if not is_ignored(path, patterns) or _may_reinclude_below(path, patterns):
                kept.append(name)
        dirs[:] = kept
        found.extend(
            prefix + name for name in files if not is_ignored(prefix + name, patterns)
        )
    yield from sorted(found)


def build_context(source: Path, destination: Path) -> list[str]:
    """Copy the files .dockerignore lets through into ``destination``."""
    ignore_file = source / ".dockerignore"
    text = ignore_file.read_text(encoding="utf-8") if ignore_file.exists() else ""
    files = list(context_files(source, read_dockerignore(text)))
    for name in files:
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / name, target, follow_symlinks=False)
    return files


# Replay --------------------------------------------------------------------------


@dataclass
class Image:
    """What the replay leaves behind: the final stage's root and its settings."""

    root: Path
    env: dict[str, str]
    workdir: Path
    cmd: list[str]
    healthcheck: list[str]
    healthcheck_flags: dict[str, str]
    user: str
    exposed: list[str]
    log: list[str]

    def which(self, program: str) -> Path:
        """Resolve ``program`` on the image's PATH, as exec-form CMD does."""
        found = shutil.which(program, path=self.env["PATH"])
        if found is None:
            raise ReplayError(f"{program!r} is not on the image's PATH")
        return Path(found)


class Replay:
    """Runs a Dockerfile's stages in scratch directories under ``workspace``.

    Parameters
    ----------
    stages
        The parsed Dockerfile.
    context
        The filtered build context, as made by `build_context`.
    workspace
        An empty directory; each stage's root and a home directory go here.
    timeout
        Seconds allowed for each RUN step.
    """

    def __init__(
        self, stages: list[Stage], context: Path, workspace: Path, timeout: float
    ) -> None:
        self.stages = stages
        self.context = context
        self.workspace = workspace
        self.timeout = timeout
        self.root = workspace / "root"
        self.home = workspace / "home"
        self.shim = workspace / "base-python"
        self.owned = self._owned_paths()

    def _owned_paths(self) -> list[str]:
        # The absolute paths the Dockerfile itself creates or hands between stages;
        # the longest first, so /opt/venv/bin is never cut at /opt/venv.
        owned: set[str] = set()
        for stage in self.stages:
            for instruction in stage.of("WORKDIR"):
                if instruction.args.startswith("/"):
                    owned.add(instruction.args.rstrip("/"))
            for instruction in stage.of("COPY"):
                flags, rest = instruction.flags()
                words = instruction.exec_form(rest) or rest.split()
                if "from" in flags:
                    owned.update(w.rstrip("/") for w in words[:-1] if w[0] == "/")
                if words[-1].startswith("/"):
                    owned.add(words[-1].rstrip("/"))
        owned.discard("")
        return sorted(owned, key=len, reverse=True)

    def relocate(self, text: str) -> str:
        """Rewrite the image paths the Dockerfile owns to paths under the root."""
        if not self.owned:
            return text
        # One pass, so a rewritten path is never rewritten again.
        alternatives = "|".join(re.escape(path) for path in self.owned)
        pattern = r"(?<![\w./-])(?:" + alternatives + r")(?![\w.-])"
        return re.sub(pattern, lambda match: str(self.root) + match.group(0), text)

    def _host_path(self, image_path: str, workdir: Path, root: Path) -> Path:
        if image_path.startswith("/"):
            return root / image_path.lstrip("/")
        return workdir / image_path

    def _base_env(self) -> dict[str, str]:
        env = {
            "PATH": f"{self.shim}:{SYSTEM_PATH}",
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
        }
        for name, value in os.environ.items():
            if name.startswith(PASSTHROUGH_PREFIXES) or (
                name.lower() in PASSTHROUGH_PROXIES
            ):
                env[name] = value
        return env

    def _make_shim(self) -> None:
        # The base image's "python" is the host's base interpreter here; its pip
        # is refused, since installing outside a venv would change the host.
        self.shim.mkdir()
        base = Path(getattr(sys, "_base_executable", sys.executable))
        for name in ("python", "python3", f"python3.{sys.version_info.minor}"):
            (self.shim / name).symlink_to(base)
        for name in ("pip", "pip3"):
            script = self.shim / name
            script.write_text(
                "#!/bin/sh\necho 'replay: pip outside a virtual environment "
                "would install into the host Python' >&2\nexit 1\n",
                encoding="utf-8",
            )
            script.chmod(0o755)

    def _run(self, argv: list[str], env: dict[str, str], cwd: Path, line: int) -> str:
        # Docker builds with umask 022, which the runtime user relies on to read
        # root-owned files.
        try:
            done = subprocess.run(
                argv,
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=self.timeout,
                umask=0o022,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise ReplayError(f"line {line}: RUN took over {self.timeout} s") from error
        if done.returncode != 0:
            raise ReplayError(
                f"line {line}: RUN exited {done.returncode}\n{done.stdout[-4000:]}"
            )
        return done.stdout

    def _copy(
        self, instruction: Instruction, env: dict[str, str], workdir: Path
    ) -> None:
        flags, rest = instruction.flags()
        words = instruction.exec_form(rest) or expand_words(rest, env)
        if len(words) < 2:
            raise ReplayError(f"line {instruction.line}: COPY needs source and dest")
        *sources, dest = words
        if "from" in flags:
            source_root = self.workspace / "stages" / flags["from"]
            if not source_root.is_dir():
                raise ReplayError(f"line {instruction.line}: no stage {flags['from']}")
            base = source_root
        else:
            base = self.context
        matched: list[Path] = []
        for source in sources:
            relative = source.lstrip("/") if "from" in flags else source
            hits = sorted(
                base / name
                for name in _glob(base, relative)
                if (base / name).exists() or (base / name).is_symlink()
            )
            if not hits:
                raise ReplayError(
                    f"line {instruction.line}: COPY source {source!r} not found"
                )
            matched.extend(hits)
        target = self._host_path(dest, workdir, self.root)
        into_directory = dest.endswith("/") or len(matched) > 1
        for path in matched:
            if path.is_dir() and not path.is_symlink():
                # A directory's contents are copied, not the directory itself.
                shutil.copytree(path, target, symlinks=True, dirs_exist_ok=True)
            else:
                final = (
                    target / path.name if into_directory or target.is_dir() else target
                )
                final.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, final, follow_symlinks=False)

    def run(self) -> Image:
        """Replay every stage; the last one is the image."""
        self.home.mkdir()
        self._make_shim()
        (self.workspace / "stages").mkdir()
        log: list[str] = []
        image: Image | None = None
        for index, stage in enumerate(self.stages):
            if index:
                # A new stage starts from the base image alone.
                previous = self.stages[index - 1].name
                self.root.rename(self.workspace / "stages" / previous)
            self.root.mkdir()
            image = self._run_stage(stage, log)
        assert image is not None, "the Dockerfile has no FROM"
        return image

    def _run_stage(self, stage: Stage, log: list[str]) -> Image:
        env = self._base_env()
        workdir = self.root
        shell = list(DEFAULT_SHELL)
        image = Image(self.root, env, workdir, [], [], {}, "0", [], log)
        for instruction in stage.instructions:
            keyword = instruction.keyword
            if keyword == "ENV":
                for name, value in parse_env(instruction, env).items():
                    env[name] = self.relocate(value)
            elif keyword == "WORKDIR":
                path = self.relocate(" ".join(expand_words(instruction.args, env)))
                workdir = workdir / path if not path.startswith("/") else Path(path)
                workdir.mkdir(parents=True, exist_ok=True)
            elif keyword == "COPY":
                self._copy(instruction, env, workdir)
            elif keyword == "RUN":
                argv = instruction.exec_form() or [*shell, instruction.args]
                argv = [self.relocate(word) for word in argv]
                log.append(self._run(argv, dict(env), workdir, instruction.line))
            elif keyword == "SHELL":
                shell = instruction.exec_form() or []
            elif keyword == "CMD":
                argv = instruction.exec_form()
                if argv is None:
                    raise ReplayError(f"line {instruction.line}: CMD must be exec form")
                image.cmd = [self.relocate(word) for word in argv]
            elif keyword == "HEALTHCHECK":
                flags, argv = parse_healthcheck(instruction)
                image.healthcheck = [self.relocate(word) for word in argv]
                image.healthcheck_flags = flags
            elif keyword == "USER":
                image.user = instruction.args
            elif keyword == "EXPOSE":
                image.exposed.extend(expand_words(instruction.args, env))
            elif keyword != "LABEL":
                # Build arguments inside a stage would need --build-arg handling.
                raise ReplayError(f"line {instruction.line}: {keyword} not replayed")
        image.env = env
        image.workdir = workdir
        return image


def _glob(base: Path, pattern: str) -> list[str]:
    # COPY sources are paths relative to the context, possibly with wildcards.
    pattern = os.path.normpath(pattern)
    if not any(char in pattern for char in "*?["):
        return [pattern]
    names = [
        path.relative_to(base).as_posix() for path in base.rglob("*") if path.exists()
    ]
    return [name for name in names if fnmatch.fnmatchcase(name, pattern)]
