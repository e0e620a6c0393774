-- Kept empty on purpose: the accounts are made by mysql-init.sh, which
-- needs the migration account's password from the environment.
SELECT 1;
