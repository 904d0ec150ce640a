"""Gigvora Live moderation: evasion-resistant message classifiers and the policy on top.

Entry points:

* :class:`moderation.service.ModerationService` / :func:`moderation.service.moderation_service`
  — ``await service.check(text, user_id=..., roles=..., channel=..., policy=...)`` from the
  pre-store hook;
* :func:`moderation.pipeline.classify_text` and :func:`moderation.cli.run_classify` for
  ``gigvora moderation classify``;
* :class:`moderation.policy.Policy` for per-channel thresholds and exempt roles.
"""
