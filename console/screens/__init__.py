"""Console screens: one per module. They read the mirror and ask the fleet for actions."""
