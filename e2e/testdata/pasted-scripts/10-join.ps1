#! expect: akol@contoso.com,chris@contoso.com,sean@contoso.com
$list = Get-Mailbox -RecipientTypeDetails UserMailbox | Sort-Object Name | ForEach-Object { $_.PrimarySmtpAddress }
$list -join ","
