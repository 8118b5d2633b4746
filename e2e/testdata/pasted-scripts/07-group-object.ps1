#! expect: Count Name
#! expect: 1 SharedMailbox
#! expect: 3 UserMailbox
Get-Mailbox -ResultSize Unlimited | Group-Object RecipientTypeDetails | Format-Table Count, Name
