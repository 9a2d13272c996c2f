"""The settings of acdc by topic: one dataclass per topic, each checking its own fields.

:class:`acdc.context.Context` is composed of them; Studio, ``--help`` and ``acdc config``
list the settings by these topics.
"""
