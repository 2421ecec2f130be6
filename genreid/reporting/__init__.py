"""genreid.reporting: ``genreid report``, the comparison of run folders of every task. It sits
above the engine so that it reads a run's config the way its task does (migrated to the
current config version)."""
