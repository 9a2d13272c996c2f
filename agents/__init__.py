"""Role agents (task-scientist, judge, curator, subjects); built in issue 2/4."""
