-- Per-cluster HA policy: the whole policy (nines_model::ha::HaPolicy as JSON, durations in
-- milliseconds) as an operator last set it; NULL: the controller's default. Its
-- automatic_recovery is not read (the auto_recovery column is the switch).
ALTER TABLE clusters ADD COLUMN ha_policy TEXT;
