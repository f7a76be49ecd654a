-- Validation cannot be undone; the previous migration's down drops the constraints.
SELECT 1;
