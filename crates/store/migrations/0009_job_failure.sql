-- How a failed job failed: 'refused' (it looked and would not act; the same job fails the
-- same way until the facts change) or 'failed' (a step went wrong; trying again may work).
-- NULL for jobs that did not fail, and for jobs recorded before this column existed.
ALTER TABLE jobs ADD COLUMN failure TEXT CHECK (failure IN ('refused', 'failed'));
