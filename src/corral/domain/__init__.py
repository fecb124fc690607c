"""The pure core: jobs, attempts, states, priorities, leases, retry policy, principals.

Nothing here does I/O or imports anything but the standard library, so every
rule can be tested by moving a clock instead of sleeping.
"""
