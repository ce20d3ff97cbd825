"""``trialguard protocol``: test a protocol package's scenarios, check its coverage, write its
edit-check specification and diff its versions."""
