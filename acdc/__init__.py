"""acdc: Assessment Coevolving with Diverse Capabilities."""
