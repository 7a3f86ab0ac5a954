"""The morning digest to the head of sales: the lost deals that break the rules, new since the
last digest, grouped by manager, each with the link that opens it in its CRM."""
