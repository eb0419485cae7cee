#!/bin/bash
# execloop.sh with the target's address randomisation off (setarch -R): an
# execve of the same program then lays out the same addresses, so only the
# memory itself (a /proc/PID/mem fd keeps the memory it was opened on) tells
# the new image from the old.  Before that check: "cannot read pagemap"
# failures, and walks of the new image taken for the old.
HS_EXECLOOP_NOASLR=1 HS_EXECLOOP_ROUNDS=${HS_EXECLOOP_ROUNDS:-10} exec bash "$(dirname "$0")/execloop.sh"
