"""Sound in: loading and checking audio, log-mel features, augmentation, the front end fitted to a
dataset, windows of long recordings, and the sounds we synthesise (the demo set, its shortcut variant,
spoken digits, out-of-distribution sets)."""
