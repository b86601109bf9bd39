"""Whether an update bot can replay a lock's header.

Renovate's `pip-compile` manager re-runs the command in a lock's header to refresh
it, and refuses a header it cannot replay; the lock then silently stops getting
updates. Its rules, from renovatebot/renovate, lib/modules/manager/pip-compile/
common.ts (`allowedPipOptions`, `optionsWithArguments`, `disallowedPipOptions`,
`extractHeaderCommand`; read at commit 7a9cee282181ccc5772e387b6b1209484aaf95c9, and
the pip-compile list is the same at c2dd4f856f068eeda4c10afc3752c35fe1f6cab1, which
also has a separate list for uv headers, not checked here) and artifacts.ts
(`constructPipCompileCmd`):

- a command other than `pip-compile` is a custom command, refused with "Detected
  custom command, header modified or set by CUSTOM_COMPILE_COMMAND";
- every option must be in the allowlist below ("Option X not supported (yet)");
- an option that takes a value must be written `--opt=value`;
- `--no-header` is refused, and at least one source file must be named.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator

OPTIONS_WITH_VALUES = frozenset(
    {"--output-file", "--extra", "--extra-index-url", "--resolver", "--constraint"}
)
ALLOWED = OPTIONS_WITH_VALUES | {
    "-v",
    "--all-extras",
    "--allow-unsafe",
    "--generate-hashes",
    "--no-emit-index-url",
    "--emit-index-url",
    "--strip-extras",
    "--index-url",
}
RENOVATE = "Renovate's pip-compile manager"

# Where a repository configures Renovate (its documented config file names).
RENOVATE_CONFIGS = frozenset(
    {
        "renovate.json",
        "renovate.json5",
        ".renovaterc",
        ".renovaterc.json",
        ".renovaterc.json5",
        ".github/renovate.json",
        ".github/renovate.json5",
        ".gitlab/renovate.json",
        ".gitlab/renovate.json5",
    }
)


def renovate_problems(command: str) -> Iterator[str]:
    """Why Renovate cannot replay the header command `command`, one reason each."""
    try:
        argv = shlex.split(command)
    except ValueError:
        yield f"{RENOVATE} cannot split its header command"
        return
    if not argv:
        return
    if argv[0] != "pip-compile":
        yield (
            f"its header shows the custom command {argv[0]!r}, which {RENOVATE} refuses to "
            "replay; let the header show the real pip-compile command (drop "
            "custom-compile-command / CUSTOM_COMPILE_COMMAND)"
        )
        return
    sources = 0
    for arg in argv[1:]:
        if not arg.startswith("-"):
            sources += 1
            continue
        option = arg.split("=", 1)[0]
        if arg == "--no-header":
            yield f"--no-header: {RENOVATE} needs the header"
        elif arg in OPTIONS_WITH_VALUES:
            yield f"{arg} VALUE: {RENOVATE} accepts it only as {arg}=VALUE"
        elif option not in ALLOWED:
            yield (
                f"{option}: not among the options {RENOVATE} replays, so it skips this "
                "lock; an index or find-links option can move to an option line of the .in"
            )
    if sources == 0:
        yield f"no source file named: {RENOVATE} needs at least one"
