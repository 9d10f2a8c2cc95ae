import sys

__version__ = "0.1.0"

# httpx imports its own command-line client (httpx._main) with the library, and that
# imports rich and pygments whenever they are installed (Textual brings both): about a
# third of a second of every `bacedge` command's start on a small device and ~10 MiB of
# every agent. bacedge never runs httpx's CLI; a None entry makes that one import fail,
# which httpx handles by design (its `main` then explains the CLI extras are missing).
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
