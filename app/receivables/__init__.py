"""Open receivables: invoices, payments and ERP open-item snapshots."""
