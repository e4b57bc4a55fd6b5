"""
Optuna's relational storage (PostgreSQL; any SQLAlchemy URL works) for studies shared by many machines:
the heartbeat that fails and retries the trials of dead workers, and the reconnection that lets a worker
ride out a database restart. Used by :mod:`sb3_boom.distributed`.
"""

import contextlib
import dataclasses
import functools
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import optuna
from optuna.storages import RDBStorage

try:  # Optuna >= 4.9 renamed the callback that re-enqueues the trials failed by the heartbeat
    from optuna.storages import RetryHeartbeatStaleTrialCallback as RetryStaleTrialCallback
except ImportError:  # pragma: no cover
    from optuna.storages import RetryFailedTrialCallback as RetryStaleTrialCallback


class DatabaseUnavailableError(RuntimeError):
    """The study's database could not be reached for longer than the reconnection window."""


@dataclasses.dataclass
class HeartbeatSettings:
    """
    :param heartbeat_s: seconds between two heartbeats of a running trial
    :param grace_s: a running trial whose last heartbeat is this old is failed (and retried); default 3 heartbeats
    :param max_retry: times a failed trial is re-enqueued (then it stays failed)
    :param reconnect_s: how long a worker retries a lost database connection before it gives up
    """

    heartbeat_s: int = 60
    grace_s: int | None = None
    max_retry: int = 3
    reconnect_s: float = 120.0

    def __post_init__(self) -> None:
        if self.grace_s is None:
            self.grace_s = 3 * self.heartbeat_s
        if self.heartbeat_s < 1 or self.grace_s <= self.heartbeat_s:
            raise ValueError(
                f"heartbeat every {self.heartbeat_s} s with a grace period of {self.grace_s} s: the heartbeat must be "
                ">= 1 s and the grace period longer than one heartbeat (3 heartbeats or more avoids failing live trials)"
            )
        if self.max_retry < 0 or self.reconnect_s < 0:
            raise ValueError(f"max_retry ({self.max_retry}) and reconnect_s ({self.reconnect_s}) must be >= 0")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "HeartbeatSettings":
        """Settings from ``SB3_BOOM_HEARTBEAT_S``, ``SB3_BOOM_GRACE_S``, ``SB3_BOOM_MAX_RETRY``, ``SB3_BOOM_RECONNECT_S``."""
        environ = os.environ if environ is None else environ
        fields = {"heartbeat_s": int, "grace_s": int, "max_retry": int, "reconnect_s": float}
        kwargs: dict[str, Any] = {}
        for field, kind in fields.items():
            name = f"SB3_BOOM_{field.upper()}"
            if environ.get(name):
                try:
                    kwargs[field] = kind(environ[name])
                except ValueError:
                    raise ValueError(
                        f"{name}={environ[name]!r} is not a number of seconds/retries: set e.g. {name}=60"
                    ) from None
        return cls(**kwargs)


def is_rdb_url(storage: Any) -> bool:
    """Whether ``storage`` is an SQLAlchemy URL (``postgresql://...``, ``sqlite:///...``), not a journal file."""
    return isinstance(storage, str) and "://" in storage and not storage.startswith("redis")


def normalize_url(url: str) -> str:
    """
    ``postgresql://`` (and ``postgres://``) with an explicit driver: psycopg 3 unless only psycopg2 is installed
    (SQLAlchemy before 2.1 assumes psycopg2, which the ``distributed`` extra does not install).
    """
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            import importlib.util

            driver = (
                "psycopg" if importlib.util.find_spec("psycopg") or not importlib.util.find_spec("psycopg2") else "psycopg2"
            )
            return f"postgresql+{driver}://" + url[len(scheme) :]
    return url


def is_connection_error(error: BaseException | None) -> bool:
    """Whether ``error`` (or what caused it) is a lost / refused database connection."""
    import sqlalchemy.exc

    while error is not None:
        if isinstance(error, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)):
            return True
        if isinstance(error, sqlalchemy.exc.DBAPIError) and error.connection_invalidated:
            return True
        error = error.__cause__ or error.__context__
    return False


# Calls that are safe to repeat when the connection broke before their answer: reads and upserts. Creating a
# trial or changing its state is not retried (a repeat could duplicate a trial or undo a finished one).
_RETRIED_METHODS = (
    "get_study_id_from_name",
    "get_study_name_from_id",
    "get_study_directions",
    "get_study_user_attrs",
    "get_study_system_attrs",
    "get_trial_user_attrs",
    "get_trial_system_attrs",
    "get_all_studies",
    "get_trial_id_from_study_id_trial_number",
    "get_trial",
    "get_all_trials",
    "get_best_trial",
    "get_trial_param",
    "set_study_user_attr",
    "set_trial_intermediate_value",
    "set_trial_user_attr",
    "set_trial_system_attr",
    "record_heartbeat",
    # what Optuna's cache in front of RDBStorage calls for get_trials / best_trial / fail_stale_trials
    "_get_trials",
    "_get_best_trial_id",
    "_get_stale_trial_ids",
)


class ReconnectingRDBStorage(RDBStorage):
    """
    ``RDBStorage`` whose reads, attribute writes, intermediate values (pruning reports) and heartbeats are
    retried for up to ``reconnect_s`` seconds when the database connection is lost (a server restart);
    then, or for any other call, it raises :class:`DatabaseUnavailableError`.

    :param reconnect_s: seconds to keep retrying
    :param kwargs: arguments of ``optuna.storages.RDBStorage``
    """

    def __init__(self, url: str, reconnect_s: float = 120.0, **kwargs: Any):
        import sqlalchemy.exc

        self.reconnect_s = reconnect_s
        deadline = time.monotonic() + reconnect_s
        attempt = 0
        while True:
            try:
                super().__init__(url, **kwargs)
                return
            except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
                # Workers started together on an empty database race to create Optuna's tables; the losers
                # hit "already exists" and find the tables complete on the next try.
                attempt += 1
                if attempt == 5:
                    raise
                time.sleep(0.5 * attempt)
            except Exception as error:
                # A worker started while the database restarts waits for it, as a running worker does.
                if not is_connection_error(error):
                    raise
                if time.monotonic() >= deadline:
                    raise DatabaseUnavailableError(unavailable_message(url, reconnect_s)) from error
                time.sleep(2.0)


def _with_reconnect(name: str) -> Callable[..., Any]:
    method = getattr(RDBStorage, name)

    @functools.wraps(method)
    def call(self: ReconnectingRDBStorage, *args: Any, **kwargs: Any) -> Any:
        deadline = time.monotonic() + self.reconnect_s
        delay = 0.5
        while True:
            try:
                return method(self, *args, **kwargs)
            except Exception as error:
                if not is_connection_error(error):
                    raise
                if time.monotonic() >= deadline:
                    raise DatabaseUnavailableError(unavailable_message(self.url, self.reconnect_s)) from error
                time.sleep(delay)
                delay = min(2 * delay, 5.0)

    return call


for _name in _RETRIED_METHODS:
    setattr(ReconnectingRDBStorage, _name, _with_reconnect(_name))


def unavailable_message(url: str, reconnect_s: float) -> str:
    return (
        f"the study's database ({_hide_password(url)}) has been unreachable for more than {reconnect_s:.0f} s. "
        "Completed trials are stored there; the trial this worker was running is failed by the heartbeat of the "
        "other workers and retried. Start this worker again with the same command once the database is back "
        "(SB3_BOOM_RECONNECT_S, or reproduce.py's --reconnect-s, sets how long a worker waits for it)."
    )


def explain_database_error(error: BaseException, url: str, reconnect_s: float) -> str | None:
    """The message for a worker that lost its database (``error`` or what caused it), else None."""
    if isinstance(error, DatabaseUnavailableError):
        return str(error)
    return unavailable_message(url, reconnect_s) if is_connection_error(error) else None


def _hide_password(url: str) -> str:
    try:
        import sqlalchemy

        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


def make_storage(url: str, settings: HeartbeatSettings | None = None) -> ReconnectingRDBStorage:
    """
    Optuna's relational storage for ``url`` with the heartbeat on and failed trials retried.

    :param url: SQLAlchemy URL, e.g. ``postgresql://user:password@host:5432/optuna``
    :param settings: heartbeat, grace period, retries and reconnection window (default: from the environment)
    """
    if not is_rdb_url(url):
        raise ValueError(f"--storage {url!r} is not a database URL: use e.g. postgresql://user:password@host:5432/optuna")
    settings = settings or HeartbeatSettings.from_env()
    with warnings_as_notes():
        return ReconnectingRDBStorage(
            normalize_url(url),
            reconnect_s=settings.reconnect_s,
            # pre-ping: a pooled connection that a server restart cut is replaced instead of failing a call.
            engine_kwargs={"pool_pre_ping": True},
            heartbeat_interval=settings.heartbeat_s,
            grace_period=settings.grace_s,
            heartbeat_stale_trial_callback=RetryStaleTrialCallback(max_retry=settings.max_retry),
        )


@contextlib.contextmanager
def warnings_as_notes() -> Iterator[None]:
    """Silence Optuna's "experimental" warnings about the heartbeat (in Optuna since 2.9; it is what fails dead trials)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        yield


def fail_stale_trials(study: optuna.Study) -> None:
    """Optuna's ``fail_stale_trials``: fail the running trials whose heartbeat is too old (the callback retries them)."""
    with warnings_as_notes():
        optuna.storages.fail_stale_trials(study)
