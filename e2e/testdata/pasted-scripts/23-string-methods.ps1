#! expect: AKOL CHRIS INFO SEAN
#! expect: sean@fabrikam.com
#! expect: contoso.com
#! expect: trimmed:[x]
((Get-Mailbox | Sort-Object Name | ForEach-Object { $_.PrimarySmtpAddress.Split("@")[0].ToUpper() }) -join " ")
(Get-Mailbox -Identity sean).PrimarySmtpAddress -replace "@contoso\.com$", "@fabrikam.com"
("sean@contoso.com" -split "@")[1]
"trimmed:[" + "  x  ".Trim() + "]"
