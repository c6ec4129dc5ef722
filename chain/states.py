"""The contracts' state enums by index, as `getJob` / `getLicense` return them."""

from __future__ import annotations

#: ComputeRental.JobState
JOB_STATES = (
    "None", "Open", "Assigned", "Submitted", "Completed",
    "Cancelled", "Expired", "Failed", "Disputed", "Resolved",
)  # fmt: skip
#: PromptMarketplace.LicenseState
LICENSE_STATES = ("None", "Pending", "Delivered", "Refunded")
